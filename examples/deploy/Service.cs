using DoraSharp.Onnx;

var builder = WebApplication.CreateBuilder(args);
// One model per process: loading reads ~90 MB; Classify is thread-safe, so every request shares it.
builder.Services.AddSingleton(_ => OnnxTextModel.Load(builder.Configuration["Model"] ?? "model"));
var app = builder.Build();

// POST /classify ["text", ...] -> [{ "label": "...", "probabilities": [...] }, ...]
app.MapPost("/classify", (string[] texts, OnnxTextModel model) => model.Classify(texts));

// Warm up before taking traffic: the first Run also builds ONNX Runtime's execution plan.
app.Services.GetRequiredService<OnnxTextModel>().Classify(["warm-up"]);
app.Run();
