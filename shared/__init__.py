"""What both tiers import: settings, models, the task contract and reset tokens."""
