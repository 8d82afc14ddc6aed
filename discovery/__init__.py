"""Imitation: symbolic regression and neural compressors turning tables into closed-form laws."""
