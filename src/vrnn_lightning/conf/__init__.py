"""The Hydra configs: one folder per group, one file per option. A package so that Hydra finds them in an
installed wheel (`pkg://vrnn_lightning.conf`) as in a clone."""
