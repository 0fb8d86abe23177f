"""The web app's shared logic, used by its blueprints: accounts, analyses, embed tokens and
partners. Blueprints are leaves: they import services, never each other."""
