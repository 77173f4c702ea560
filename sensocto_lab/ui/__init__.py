"""What people see: notebook widgets (:mod:`.notebook`) and Panel dashboards (:mod:`.dashboard`)."""
