"""Image layers as root filesystems: one snapshot per layer, keyed by its ChainID
(``rootfs``), unpacked safely (``unpack``, ``unpack_upper``) from a tar read as a stream
(``tarstream``, ``layerstream``), every path resolved inside its root (``inroot``)."""
