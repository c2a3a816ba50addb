"""`promote`: `executor` (request, approval buttons, expiry), `promoter` (commit and deploy with the
guard rails at each step) and `views` (the card).
"""
