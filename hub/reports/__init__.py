"""Reports: how fast the team answers, how customers feel, what campaigns bring."""
