"""Libraries from a user's character, bpy side: the character's objects and rest state (``character``), face
framing and thumbnails (``framing``), landmarks found on the mesh (``landmarks3d``), and a library builder
(``builder``) over the poses ``core.expression_keys`` and ``core.vrm`` compose. Imported only inside Blender.
"""
