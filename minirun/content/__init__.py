"""The local content store: blobs by digest (``blobs``), the image index (``images``), and
the file helpers the other packages borrow (``files``)."""
