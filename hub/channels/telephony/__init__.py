"""What every phone channel shares: SMS text rules (segments, diacritics, opt-out
keywords), whatever the provider or PBX."""
