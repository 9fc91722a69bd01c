// The API documentation page (templates/api/docs.html): Swagger UI, vendored under
// static/vendor/swagger-ui, shows the OpenAPI document named by #swagger-ui's data-spec-url.
// Nothing is fetched from elsewhere: no validator badge (validatorUrl null), no CDN, and the
// page's Content-Security-Policy (no inline script or style, no eval) holds as everywhere.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") { return; }
  var SwaggerUIBundle = window.SwaggerUIBundle;
  window.portalApiDocs = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    displayRequestDuration: true,
    persistAuthorization: false,
    withCredentials: false
  });
})();
