"""Training, optimisation and export (TensorFlow through tf_keras).

Evaluates exported models through ``pi_runtime`` so that the numbers it
reports are the numbers the device gets.
"""
