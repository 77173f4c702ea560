"""sensocto_lab.live"""
