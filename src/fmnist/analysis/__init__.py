"""Analysis: what a trained model and its records say.

`plots/` (figures from arrays and records; imports no other stage), `report` and
`report_html` (a run's page), `results` (the results table), `bench` (speed side by
side), `baselines` (classic classifiers). May import `training` and the layers below
it; never `deploy` or `cli`.
"""
