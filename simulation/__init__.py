"""The simulated world, its reviewers and the demo: on top of everything, used by nothing below.

`world` builds a seeded synthetic world for a policy (traffic, reviewer history, a golden set and
the ground truth apart); `reviewers` answers Label Studio tasks as that world's reviewers would;
`demo` turns the real wheel on such a world. Production code never imports this package.
"""
