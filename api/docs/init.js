// Renders this server's own OpenAPI document. "Try it out" sends requests to this server; when
// tokens are on, "Authorize" takes one (the dashboard's token, if this tab has one, is offered).
"use strict";
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  requestInterceptor: (req) => {
    const token = sessionStorage.getItem("nudge.token");
    if (token && !req.headers.Authorization) req.headers.Authorization = "Bearer " + token;
    return req;
  },
});
