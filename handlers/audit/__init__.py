"""`/gitops audit`: `executor` (answers in a thread, a More button per page) and `views`."""
