"""住民記録 (resident registry), built to the national resident record standard."""
