"""The company service (`memex serve`): many people, one knowledge base, each seeing only what
their roles allow.

Identity is resolved at the edge, from a bearer token (`tokens`, `auth`); everything after that
goes through the read facade (memex.api.reads, held by `core.Service`), which reads only through
`Index.search(..., principal=...)` and sends generation through one worker queue
(memex.api.worker; the model runs in its own process, memex.models.process). Front doors: the JSON API
and the web page (`routes`, `static/`), an OpenAI-compatible API (`openai_api`) and MCP
(`mcp_server`), assembled by `app.create_app`. Import the submodules you need: this package
imports nothing heavy by itself, so `memex --help` stays instant.
"""
