"""sensocto_lab.protocol"""
