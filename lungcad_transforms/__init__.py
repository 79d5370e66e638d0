"""lungcad: lung-cancer CAD transforms, I/O, phantoms and metrics shared by the lungcad MONAI bundles."""
