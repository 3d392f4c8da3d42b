"""Pure in-place fills on tensors: ZerO's identity, partial identity and Hadamard blocks, ConstNet's
averaging, the random baselines, and the row kernels that write one shard's rows of each.

Nothing here knows a module or a role: a fill takes a tensor (and its layer geometry: ``groups``,
``transposed``) and follows ``torch.nn.init``'s conventions (in place, under ``no_grad``, returns the
tensor, keeps its dtype and device, random draws from an explicit generator).
"""
