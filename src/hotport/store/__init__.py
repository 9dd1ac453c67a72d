"""hotport.store."""
