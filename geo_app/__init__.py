"""Suzhou Innovation Map (苏州科创地图): registry, strategy layers, maps and exports."""

__version__ = "0.1.0"
