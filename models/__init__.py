"""PyTorch models, data generators and trainers (deep linear networks, potentials, grokking)."""
