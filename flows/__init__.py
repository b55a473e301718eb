"""Prefect flows that compose Flywheel's steps into the wheel.

A process that runs flows in-process points Prefect at Flywheel's home first
(`flows.home.use_flywheel_home`, which the command line calls before it imports a flow).
"""
