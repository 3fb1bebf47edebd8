"""PDF documents (domain 3.10): a small line markup, rendered by fpdf2 with a Unicode TTF.

The French wording lives in `templates/pdf/*.j2`, which render to the markup; this package only
lays it out (`pdf.render`) and finds and prepares the fonts (`fonts`).
"""
