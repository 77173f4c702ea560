"""sensocto_lab.sync"""
