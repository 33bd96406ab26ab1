#!/usr/bin/env python3
"""Render a scene file to video: ``python render.py SCENE [-o OUT] [options]``.

A thin wrapper over ``morphstudio render`` so a scene renders from a plain checkout.
"""
import sys

from morphstudio.cli import entry

if __name__ == "__main__":
    entry(["render", *sys.argv[1:]])
