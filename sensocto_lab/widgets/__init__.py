"""sensocto_lab.widgets"""
