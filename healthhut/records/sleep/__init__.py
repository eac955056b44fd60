"""Overnight oximetry and home sleep apnea test analysis: numpy arrays in, screening metrics out."""
