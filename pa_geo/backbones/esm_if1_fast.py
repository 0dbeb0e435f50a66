"""A forward pass for fair-esm's ESM-IF1 encoder: fair-esm's ``encoder(...)`` outputs, faster, and optionally with
a featurisation that does not depend on the chain's pose (:func:`if1_encoder_forward`).

Profiled on one real 301-residue chain (full size, 1 CPU thread, ``torch.profiler``), fair-esm's encoder spends
~85% of its time in the GVP message function on the k = 30 neighbour edges (9,030 rows): the first message GVP's
``[E, 2593] x [2593, 1024]`` scalar matmul alone is 21%, its ``[3E, 513] x [513, 513]`` vector matmul 9%, the
last GVP's ``[E, 1280] x [1280, 1024]`` another ~10%, and concatenating per-edge inputs 8%. Two identities
remove most of that work without changing the function (only float summation order):

* the first message GVP is linear in its concatenated input ``(s_j, v_j) | edge | (s_i, v_i)`` before its first
  non-linearity, so the node parts of its ``wh`` / ``ws`` / ``wv`` products are computed once per NODE and
  gathered to the edges (``W [x_j; e; x_i] = W_j x_j + W_e e + W_i x_i``; ``wv . wh`` is one linear map);
* the last message GVP has no activation (scalar output ``ws [s; |wh v|]``, vector output ``wv wh v``), and the
  messages are averaged per node, so ``mean(ws(.)) = ws(mean(.))``: its ``ws`` / ``wv`` run on nodes, not edges.

The graph edges, node updates, GVP output embedding and the transformer layers are fair-esm's modules, called as
they are; the node features and local frames are fair-esm's, or with ``pose_invariant`` the same with every
feature that reads a missing atom padded. ``tests/backbones/test_backbone_esm_fast.py`` checks max |diff| <= 1e-4
against ``encoder(...)`` (tiny and full-size architectures, ``pose_invariant=False``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _vnorm(vh: torch.Tensor, eps: float) -> torch.Tensor:
    """GVP's ``_norm_no_nan`` over the xyz axis of ``vh [E, 3, C]`` -> ``[E, C]``."""
    return torch.square(vh).sum(1).add_(eps).sqrt_()


def _addmm_(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``out += a @ b`` in place, in ``out``'s dtype (in-place ops skip autocast's casts)."""
    return out.addmm_(a.to(out.dtype), b.to(out.dtype))


def _act_(act, x: torch.Tensor) -> torch.Tensor:
    """``act(x)``, in place for the activations fair-esm's GVPs use (ReLU, sigmoid)."""
    if act is F.relu or act is torch.relu:
        return x.relu_()
    if act is torch.sigmoid:
        return x.sigmoid_()
    return act(x)


def _gate_(gvp, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """GVP's vector gating of ``v [E, 3, Vo]`` (in place) by ``wg(s)`` or by the vectors' own norms."""
    if not gvp.vector_act:
        return v
    gate = gvp.wg(s) if gvp.vector_gate else _vnorm(v, gvp.eps)
    return v.mul_(_act_(gvp.vector_act, gate).unsqueeze(1))


def _first_gvp(gvp, s, v, es, ev, src, dst) -> tuple[torch.Tensor, torch.Tensor]:
    """fair-esm ``GVP`` on the per-edge input ``(s[src], v[src]) | (es, ev) | (s[dst], v[dst])``, computed
    from node-level products gathered to the edges in one ``embedding_bag`` sum. ``s [N, S]``, ``v [N, V, 3]``,
    ``es [E, Se]``, ``ev [E, Ve, 3]`` -> ``([E, So], [E, 3, Vo])`` (vectors channel-last)."""
    N, S, V, Se, Ve = s.shape[0], s.shape[1], v.shape[1], es.shape[1], ev.shape[1]
    wh, ws, wv = gvp.wh.weight, gvp.ws.weight, gvp.wv.weight  # [h, 2V+Ve], [So, 2S+Se+h], [Vo, h]
    So, h, Vo = ws.shape[0], wh.shape[0], wv.shape[0]
    wvh = wv @ wh  # [Vo, 2V+Ve]: wv(wh(x)) as one map
    vt, evt = v.transpose(1, 2), ev.transpose(1, 2)  # [N, 3, V], [E, 3, Ve]

    def node_table(scols: slice, vcols: slice) -> torch.Tensor:  # [N, So + 3h + 3Vo]
        return torch.cat([F.linear(s, ws[:, scols]), (vt @ wh[:, vcols].T).flatten(1),
                          (vt @ wvh[:, vcols].T).flatten(1)], 1)

    table = torch.cat([node_table(slice(0, S), slice(0, V)),
                       node_table(slice(S + Se, 2 * S + Se), slice(V + Ve, 2 * V + Ve))])
    out = F.embedding_bag(torch.stack([src, dst + N], 1), table, mode="sum")  # x_j part + x_i part
    s_out, vh, v_out = out[:, :So], out[:, So:So + 3 * h].view(-1, 3, h), out[:, So + 3 * h:].view(-1, 3, Vo)
    for part, w in ((vh, wh), (v_out, wvh)):  # the edge vectors' share (Ve = 1 in ESM-IF1: a broadcast product)
        w_e = w[:, V:V + Ve].T
        part.addcmul_(evt.to(part.dtype), w_e.to(part.dtype)) if Ve == 1 else part.add_(evt @ w_e)
    _addmm_(_addmm_(s_out, es, ws[:, S:S + Se].T), _vnorm(vh, gvp.eps), ws[:, 2 * S + Se:].T).add_(gvp.ws.bias)
    if gvp.scalar_act:
        s_out = _act_(gvp.scalar_act, s_out)
    return s_out, _gate_(gvp, s_out, v_out)


def _mid_gvp(gvp, s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """fair-esm ``GVP`` with vectors in and out, on channel-last vectors ``v [E, 3, V]`` -> ``([E, So],
    [E, 3, Vo])``."""
    S = s.shape[1]
    vh = v @ gvp.wh.weight.T  # [E, 3, h]
    ws = gvp.ws.weight
    s_out = _addmm_(F.linear(s, ws[:, :S], gvp.ws.bias), _vnorm(vh, gvp.eps), ws[:, S:].T)
    if gvp.scalar_act:
        s_out = _act_(gvp.scalar_act, s_out)
    return s_out, _gate_(gvp, s_out, vh @ gvp.wv.weight.T)


def _last_gvp_mean(gvp, s, v, dst, num_nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over each node's incoming edges of a linear (activation-free) fair-esm ``GVP`` applied per edge, as
    the GVP applied to the means: ``s [E, S]``, ``v [E, 3, V]`` (channel-last) -> ``([N, So], [N, Vo, 3])``
    (0 for nodes with no incoming edge, as PyG's mean aggregation gives)."""
    vh = v @ gvp.wh.weight.T  # [E, 3, h]
    count = torch.bincount(dst, minlength=num_nodes).to(s.dtype).unsqueeze(-1)
    inv = 1.0 / count.clamp(min=1)

    def mean(x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(num_nodes, *x.shape[1:]).index_add_(0, dst, x).mul_(inv.view(-1, *[1] * (x.dim() - 1)))

    S = s.shape[1]
    ws = gvp.ws.weight
    s_out = _addmm_(F.linear(mean(s), ws[:, :S], gvp.ws.bias), mean(_vnorm(vh, gvp.eps)), ws[:, S:].T)
    s_out.mul_((count > 0).to(s_out.dtype))
    return s_out, (mean(vh) @ gvp.wv.weight.T).transpose(1, 2)


def _is_linear(gvp) -> bool:
    return not gvp.scalar_act and not gvp.vector_act and bool(gvp.vi) and bool(gvp.vo)


def gvp_conv_layer(layer, x: tuple[torch.Tensor, torch.Tensor], edge_index: torch.Tensor,
                   edge_attr: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """fair-esm ``GVPConvLayer`` in eval mode (mean aggregation, no edge update): node ``x = ([N, S], [N, V, 3])``,
    ``edge_index [2, E]`` (messages from ``edge_index[0]`` to ``edge_index[1]``), edge ``([E, Se], [E, Ve, 3])``.
    Layouts :func:`supports_fast_gvp` accepts only."""
    s, v = x
    src, dst = edge_index
    gvps = list(layer.conv.message_func)
    ms, mv = _first_gvp(gvps[0], s, v, edge_attr[0], edge_attr[1], src, dst)
    for gvp in gvps[1:-1]:
        ms, mv = _mid_gvp(gvp, ms, mv)
    ds, dv = _last_gvp_mean(gvps[-1], ms, mv, dst, s.shape[0])
    s, v = layer.norm[0]((s + ds, v + dv))
    fs, fv = layer.ff_func((s, v))
    return layer.norm[1]((s + fs, v + fv))


def supports_fast_gvp(encoder) -> bool:
    """True when every GVP layer of fair-esm's ESM-IF1 ``encoder`` has the layout :func:`gvp_conv_layer` runs
    (first message GVP with vectors in and out, no per-edge GVP updates, mean aggregation)."""
    for layer in encoder.gvp_encoder.encoder_layers:
        gvps = list(layer.conv.message_func)
        if (layer.edge_message_func is not None or layer.conv.aggr != "mean" or len(gvps) < 2
                or not all(g.vi and g.vo for g in gvps) or not _is_linear(gvps[-1])):
            return False
    return True


# ---- featurisation that never reads a missing atom --------------------------------------------------------------
# fair-esm replaces missing atoms (the BOS / EOS rows its CoordBatchConverter adds, chain gaps, residues without
# N, CA or C) by zeros before featurising, so every feature built from one reads the coordinate origin and
# changes when the chain moves: the first residue's phi, the last residue's psi, the CA directions to a missing
# neighbour, the side-chain direction and local frame of a residue missing N, CA or C. The functions below give
# those features the values fair-esm gives where its own featurisers pad (angle 0, zero vector, zero frame) and
# leave every other feature as fair-esm computes it.
_DIHEDRAL_PAD = (1.0, 1.0, 1.0, 0.0, 0.0, 0.0)  # cos, sin of phi, psi, omega at angle 0


def dihedral_ok(atom_ok: torch.Tensor) -> torch.Tensor:
    """``[B, L, 3]`` bool: whether residue ``i``'s phi (C_i-1, N_i, CA_i, C_i), psi (N_i, CA_i, C_i, N_i+1) and
    omega (CA_i, C_i, N_i+1, CA_i+1) read four present atoms; ``atom_ok [B, L, 3]`` marks present N, CA, C."""
    four = atom_ok.flatten(1).unfold(1, 4, 1).all(-1)  # [B, 3L - 3]: atoms t..t+3 of N0, CA0, C0, N1, ... present
    return F.pad(four, (1, 2), value=False).view_as(atom_ok)


def pose_invariant_dihedrals(features: torch.Tensor, atom_ok: torch.Tensor) -> torch.Tensor:
    """fair-esm's dihedral features ``[B, L, 6]`` (cos, then sin, of phi, psi, omega: ``DihedralFeatures.
    _dihedrals`` or ``GVPInputFeaturizer._dihedrals``) with every angle that reads a missing atom set to 0."""
    ok = dihedral_ok(atom_ok).repeat(1, 1, 2)
    return torch.where(ok, features, features.new_tensor(_DIHEDRAL_PAD))


def pose_invariant_node_features(coords: torch.Tensor, atom_ok: torch.Tensor, with_coord_mask: bool = True
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """fair-esm ``GVPInputFeaturizer.get_node_features`` of ``coords [B, L, 3, 3]`` (missing atoms 0, ``atom_ok``
    marking present ones) with every feature that reads a missing atom padded: dihedrals
    (:func:`pose_invariant_dihedrals`), the CA directions to the previous / next residue unless both CA are
    present, and the side-chain direction unless N, CA and C are."""
    from esm.inverse_folding.features import GVPInputFeaturizer as G

    scalars = pose_invariant_dihedrals(G._dihedrals(coords), atom_ok)
    if with_coord_mask:
        scalars = torch.cat([scalars, atom_ok.all(-1).float().unsqueeze(-1)], -1)
    ca = atom_ok[:, :, 1]
    step = ca[:, 1:] & ca[:, :-1]
    fwd_ok, back_ok = F.pad(step, (0, 1), value=False), F.pad(step, (1, 0), value=False)
    orientations = G._orientations(coords[:, :, 1]) * torch.stack([fwd_ok, back_ok], -1).unsqueeze(-1)
    sidechains = G._sidechains(coords) * atom_ok.all(-1, keepdim=True)
    return scalars, torch.cat([orientations, sidechains.unsqueeze(-2)], -2)


def pose_invariant_frames(coords: torch.Tensor, atom_ok: torch.Tensor) -> torch.Tensor:
    """fair-esm ``get_rotation_frames`` ``[B, L, 3, 3]``, all zero (as for a residue with no atoms) where N, CA or
    C is missing."""
    from esm.inverse_folding.util import get_rotation_frames

    return get_rotation_frames(coords) * atom_ok.all(-1)[..., None, None]


def _embed_graph(emb, coords, coord_mask, padding_mask, confidence, node_features):
    """fair-esm ``GVPGraphEmbedding.forward`` with the node features given: flattened node / edge embeddings and
    ``edge_index``."""
    from esm.inverse_folding.gvp_utils import flatten_graph
    from esm.inverse_folding.util import rbf

    with torch.no_grad():
        edge_features, edge_index = emb.get_edge_features(coords, coord_mask, padding_mask)
    node_s, node_v = emb.embed_node(node_features)
    nodes = (node_s + emb.embed_confidence(rbf(confidence, 0.0, 1.0)), node_v)
    return flatten_graph(nodes, emb.embed_edge(edge_features), edge_index)


def _gvp_encoder(gvp_encoder, coords, coord_mask, padding_mask, confidence, node_features, fast: bool):
    """fair-esm ``GVPEncoder.forward`` on the given node features: node ``([B, L, S], [B, L, V, 3])``; its GVP
    layers run :func:`gvp_conv_layer` when ``fast``."""
    from esm.inverse_folding.gvp_utils import unflatten_graph

    nodes, edges, edge_index = _embed_graph(gvp_encoder.embed_graph, coords, coord_mask, padding_mask, confidence,
                                            node_features)
    for layer in gvp_encoder.encoder_layers:
        if fast:
            nodes = gvp_conv_layer(layer, nodes, edge_index, edges)
        else:
            nodes, edges = layer(nodes, edge_index, edges)
    return unflatten_graph(nodes, coords.shape[0])


def _embedding(encoder, coords: torch.Tensor, padding_mask: torch.Tensor, confidence: torch.Tensor,
               pose_invariant: bool, fast: bool) -> torch.Tensor:
    """fair-esm ``GVPTransformerEncoder.forward_embedding``: the summed input embedding ``[B, L, D]``, featurised
    by the ``pose_invariant`` functions above or by fair-esm's own."""
    from esm.inverse_folding.features import GVPInputFeaturizer
    from esm.inverse_folding.util import get_rotation_frames, nan_to_num, rbf, rotate

    atom_ok = torch.isfinite(coords).all(-1)  # [B, L, 3]
    coord_mask = atom_ok.all(-1)
    coords = nan_to_num(coords)
    alphabet = encoder.dictionary
    mask_tokens = padding_mask * alphabet.padding_idx + ~padding_mask * alphabet.get_idx("<mask>")
    dihedrals = encoder.embed_dihedrals
    if pose_invariant:
        with torch.no_grad():
            graph_nodes = pose_invariant_node_features(coords, atom_ok)
            node_s, node_v = pose_invariant_node_features(coords, atom_ok, with_coord_mask=False)
        frames_t = pose_invariant_frames(coords, atom_ok).transpose(-2, -1)
        dihedral_in = pose_invariant_dihedrals(dihedrals._dihedrals(coords), atom_ok)
    else:
        with torch.no_grad():
            graph_nodes = encoder.gvp_encoder.embed_graph.get_node_features(coords, coord_mask)
            node_s, node_v = GVPInputFeaturizer.get_node_features(coords, coord_mask, with_coord_mask=False)
        frames_t = get_rotation_frames(coords).transpose(-2, -1)
        dihedral_in = dihedrals._dihedrals(coords)
    gvp_s, gvp_v = _gvp_encoder(encoder.gvp_encoder, coords, coord_mask, padding_mask, confidence, graph_nodes,
                                fast)
    x = (encoder.embed_tokens(mask_tokens) * encoder.embed_scale
         + dihedrals.norm_nodes(dihedrals.node_embedding(dihedral_in))
         + encoder.embed_gvp_output(torch.cat([gvp_s, rotate(gvp_v, frames_t).flatten(-2, -1)], -1))
         + encoder.embed_confidence(rbf(confidence, 0.0, 1.0))
         + encoder.embed_gvp_input_features(torch.cat([node_s, rotate(node_v, frames_t).flatten(-2, -1)], -1)))
    return encoder.dropout_module(x + encoder.embed_positions(mask_tokens))


def if1_encoder_forward(encoder, coords: torch.Tensor, padding_mask: torch.Tensor, confidence: torch.Tensor,
                        return_all_hiddens: bool = False, pose_invariant: bool = True) -> dict[str, list[torch.Tensor]]:
    """``encoder(coords, padding_mask, confidence, return_all_hiddens)`` of fair-esm's ``GVPTransformerEncoder``:
    ``coords [B, L, 3, 3]`` (N, CA, C; NaN or inf = missing), ``padding_mask [B, L]`` bool, ``confidence
    [B, L]``. Returns ``{"encoder_out": [[L, B, D]], "encoder_states": [L, B, D] per layer (input embedding first)
    when ``return_all_hiddens``}``.

    With ``pose_invariant`` (default) every input feature that would read a missing atom (which fair-esm puts at
    the origin) is padded instead (:func:`pose_invariant_node_features`, :func:`pose_invariant_dihedrals`,
    :func:`pose_invariant_frames`), so the output does not change when the chain is rotated or translated;
    ``False`` gives fair-esm's own numbers. In eval mode the GVP layers run :func:`gvp_conv_layer` where
    :func:`supports_fast_gvp` accepts the encoder, fair-esm's layers otherwise."""
    fast = supports_fast_gvp(encoder) and not encoder.training
    x = _embedding(encoder, coords, padding_mask, confidence, pose_invariant, fast)
    x = (x * (1 - padding_mask.unsqueeze(-1).type_as(x))).transpose(0, 1)
    states = [x] if return_all_hiddens else []
    for layer in encoder.layers:
        x = layer(x, encoder_padding_mask=padding_mask)
        if return_all_hiddens:
            states.append(x)
    return {"encoder_out": [encoder.layer_norm(x)], "encoder_states": states}
