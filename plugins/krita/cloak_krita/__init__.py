"""Cloak for Krita: Tools > Scripts > Protect with Cloak..."""
from krita import Krita

from .extension import CloakExtension

Krita.instance().addExtension(CloakExtension(Krita.instance()))
