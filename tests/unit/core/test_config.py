"""Config loading: lookup order, clear errors naming file and key, secrets from files."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from healthhut.config import Config, load_config, parse_config, read_secret, resolve_config_path
from healthhut.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "configs" / "healthhut.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "healthhut.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_documents_every_key() -> None:
    config = load_config(EXAMPLE)
    assert config.site.id == "hut-07"
    assert config.platform.auth == "bearer"
    assert [d.id for d in config.devices] == ["bp-desk", "oximeter-1"]
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for section in ("site", "store", "platform", "mqtt"):
        model = type(getattr(config, section))
        assert set(model.model_fields) == set(data[section]), f"[{section}] keys not all documented"
    device_keys = set().union(*(set(d) for d in data["devices"]))
    assert device_keys == set(type(config.devices[0]).model_fields)


def test_embedded_defaults_work_without_any_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HEALTHHUT_CONFIG", raising=False)
    monkeypatch.setattr("healthhut.config.SYSTEM_CONFIG", tmp_path / "absent.toml")
    assert resolve_config_path(None) is None
    config = load_config(None)
    assert config.source == "<embedded defaults>"
    assert config.store.path.name == "healthhut.db"
    assert config.platform.verify_tls is True


def test_lookup_order_explicit_then_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = write(tmp_path, '[site]\nid = "from-env"\n')
    explicit = tmp_path / "explicit.toml"
    explicit.write_text('[site]\nid = "explicit"\n', encoding="utf-8")
    monkeypatch.setenv("HEALTHHUT_CONFIG", str(env_file))
    assert load_config(None).site.id == "from-env"
    assert load_config(explicit).site.id == "explicit"


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[platform]\nbase_url = "https://x.example"\nbatchsize = 5\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "platform.batchsize" in str(info.value)
    assert "unknown key" in str(info.value)
    assert info.value.exit_code == 2


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sites: unknown key"):
        load_config(write(tmp_path, '[sites]\nid = "x"\n'))


def test_bad_value_in_device_list_names_the_index(tmp_path: Path) -> None:
    text = ('[[devices]]\nid = "a"\ndriver = "x"\naddress = "AA"\n'
            '[[devices]]\nid = "b"\ndriver = "y"\naddress = "BB"\nport = "/dev/ttyUSB0"\n')
    with pytest.raises(ConfigError, match=r"devices\[1\]"):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(("text", "needle"), [
    ('[site]\ntimezone = "Mars/Olympus"\n', "site.timezone"),
    ('[platform]\nbase_url = "ftp://x"\n', "platform.base_url"),
    ('[platform]\nauth = "oauth2"\n', "needs token_url, client_id, client_secret_file"),
    ('[platform]\nbatch_size = 0\n', "platform.batch_size"),
    ('[mqtt]\nport = 70000\n', "mqtt.port"),
    ('[platform]\nclient_cert = "/a.crt"\n', "client_cert and client_key go together"),
])
def test_invalid_values_are_clear(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert needle in str(info.value)


def test_duplicate_device_ids_are_refused() -> None:
    data = {"devices": [{"id": "a", "driver": "x", "address": "1"}, {"id": "a", "driver": "y", "port": "p"}]}
    with pytest.raises(ConfigError, match="used twice"):
        parse_config(data, "test.toml")


def test_malformed_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[site\n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_secret_from_credentials_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "platform-token").write_text("s3cret-token\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert read_secret(Path("platform-token"), purpose="platform token") == "s3cret-token"
    (creds / "empty").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="empty") as info:
        read_secret(Path("empty"), purpose="platform token")
    assert "s3cret" not in str(info.value)


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(Exception, match="frozen"):
        config.site.id = "other"  # type: ignore[misc]
