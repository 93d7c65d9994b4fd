"""Connectors: how vendor data reaches the landing zone. Pull clients, the push collector, the vendor protocols.

A layer of its own (it imports only the kernel): the domains never see a wire, they read landing files.
"""
