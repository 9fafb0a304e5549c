"""``sltlab bench``: speed of the theory and of the samplers, and accuracy against exact values,
as medians over repeated runs beside their targets. Imported by the command, not at start."""
