from recs.cli import run

run()
