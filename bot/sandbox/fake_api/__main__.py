"""``python -m bot.sandbox.fake_api``: serve until SIGINT/SIGTERM."""

from bot.sandbox.fake_api.standalone import main

if __name__ == "__main__":
    raise SystemExit(main())
