"""Real-format readers and writers (CC3M, VIST, MMDialog), the synthetic world and its oracle."""
