"""Checks a user runs on their own models, in the style of ``torch.testing`` and e3nn's ``assert_equivariant``:

* :func:`assert_batch_independent`: every graph gets the same outputs alone as inside a batch (no information leaks
  between the proteins of a batch: attention, pooling and readouts stay within a graph);
* :func:`assert_rigid_motion_invariant`: rotating and translating the coordinates leaves the outputs unchanged.

Both take any module that maps a PyG batch to an :class:`~pa_geo.nn.outputs.EncoderOutput` or to a tensor of node
rows ``[N, D]`` / graph rows ``[B, D]`` (an encoder, an adapter, a baseline), run it in ``eval`` mode without
gradients, and raise ``AssertionError`` naming the output, the graph and the largest difference.
"""
from pa_geo.testing.invariance import assert_batch_independent, assert_rigid_motion_invariant, random_rotation

__all__ = ["assert_batch_independent", "assert_rigid_motion_invariant", "random_rotation"]
