// Starts Swagger UI on the API reference page. A file of its own because the Content-Security-Policy refuses
// inline script; the description's URL comes from the page (data-openapi-url).
document.addEventListener("DOMContentLoaded", () => {
  const host = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: host.dataset.openapiUrl,
    domNode: host,
    deepLinking: true,
    // Swagger UI's validator badge would ask a server on the internet about our description.
    validatorUrl: null,
  });
});
