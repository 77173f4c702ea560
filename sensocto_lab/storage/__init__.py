"""sensocto_lab.storage"""
