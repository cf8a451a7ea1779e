"""Tests of the runbook engine and its actions."""
