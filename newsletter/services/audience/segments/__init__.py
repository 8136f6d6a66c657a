"""Segments: subscribers chosen by rules over attributes, lists, signup date, engagement and bounces.

rules.py validates the JSON, compile.py turns it into SQL, segments.py saves, counts and previews.
"""
from .compile import compile_rules
from .rules import EMPTY, RuleError
from .segments import all_segments, count, create, delete, existing_ids, get, matching, preview, update, validated

__all__ = ["EMPTY", "RuleError", "all_segments", "compile_rules", "count", "create", "delete", "existing_ids", "get",
           "matching", "preview", "update", "validated"]
