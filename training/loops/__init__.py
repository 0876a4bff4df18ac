"""Training loops, one module per model (StyleGAN3's ``training_loop.py``): each holds its configs, the loop,
its evaluation and its export. The entry points (``training.train_*``) only parse the command line and call
``training_loop``."""
