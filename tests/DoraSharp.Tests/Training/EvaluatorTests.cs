using DoraSharp.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.Training;

public sealed class EvaluatorTests
{
    /// <summary>Returns the first three features as the logits: the prediction is whichever of them is largest.</summary>
    private sealed class FirstThree() : nn.Module<Tensor, Tensor>(nameof(FirstThree))
    {
        public override Tensor forward(Tensor x) => x.narrow(1, 0, 3);
    }

    /// <summary>
    /// 2,345 examples predicted as class (i mod 3); the first <paramref name="correct"/> are labelled with that class,
    /// the rest with the next class, so exactly <paramref name="correct"/> are right.
    /// </summary>
    private static LabelledTensors Split(int count, int correct)
    {
        var x = new float[count * 3];
        var y = new long[count];
        for (var i = 0; i < count; i++)
        {
            x[3 * i + i % 3] = 1;
            y[i] = i < correct ? i % 3 : (i + 1) % 3;
        }
        return new LabelledTensors(torch.tensor(x, [count, 3]), torch.tensor(y), "evaluator test");
    }

    [Theory]
    [InlineData(2345, 1234, 1000)]
    [InlineData(2345, 2345, 7)]
    [InlineData(1, 0, 1000)]
    public void Every_example_is_scored_not_just_the_first_batch(int count, int correct, int batchSize)
    {
        using var split = Split(count, correct);
        var result = Evaluator.Evaluate(new FirstThree(), split, batchSize);
        Assert.Equal(count, result.Count);
        Assert.Equal(correct, result.Correct);
        Assert.Equal((double)correct / count, result.Accuracy);
    }

    [Fact]
    public void The_model_train_or_eval_mode_is_restored()
    {
        using var split = Split(10, 5);
        var model = new FirstThree();
        model.train();
        Evaluator.Evaluate(model, split);
        Assert.True(model.training);
        model.eval();
        Evaluator.Evaluate(model, split);
        Assert.False(model.training);
    }

    [Fact]
    public void An_empty_split_is_refused()
    {
        using var split = new LabelledTensors(torch.zeros(0, 3), torch.zeros(0, dtype: ScalarType.Int64), "empty");
        Assert.Contains("nothing to evaluate", Assert.Throws<ArgumentException>(() => Evaluator.Evaluate(new FirstThree(), split)).Message);
    }
}
