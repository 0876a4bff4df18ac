"""The shared core: what the add-on and the backend both need, in plain Python (stdlib only, never ``bpy``).

- ``protocol``: JSON-RPC framing, error codes, the protocol version;
- ``library_format``: the pose library's on-disk format and its validation;
- ``vocabulary``: expression labels and their synonyms, the FERG-DB folder layout, the retrieval weights'
  defaults;
- ``smoothing``: temporal smoothing of per-frame pose choices (batch keying).

It is the only part of ``deepexpr_blender`` the backend imports (a contract checked by ``make test``).
"""
