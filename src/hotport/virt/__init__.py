"""hotport.virt."""
