"""Corpora written independently of Lethe's matcher, for measuring how well it locates people.

``variants`` builds erasure requests and the records that mention them in the forms real data
uses; see README.md in this folder.
"""
