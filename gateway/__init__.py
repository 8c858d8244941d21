"""edXML signing and verification mail gateway for Vietnamese state agencies.

The package is layered (see ``README.md`` and ``HOUSE.md``): ``edxml`` is the pure wire
format, ``verify`` and ``sign`` judge and seal, ``inbound``/``outbound`` are the mail edges,
``cli`` composes everything. Import the entry points from the sub-packages.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
