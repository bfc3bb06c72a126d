"""The OpenAI-compatible face of the chat: /v1/models and /v1/chat/completions, so that
any OpenAI client (the SDKs, Open WebUI, LibreChat, Continue) can talk to a course."""
