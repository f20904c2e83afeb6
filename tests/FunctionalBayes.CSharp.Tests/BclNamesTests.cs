// This file imports System.Numerics.Tensors next to the facade: both compile together without aliases,
// because the facade has no type named Tensor (its arrays are NdArray).
using System.Numerics.Tensors;
using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

public class BclNamesTests
{
    [Fact]
    public void FacadeAndSystemNumericsTensorsLiveSideBySide()
    {
        Tensor<double> bcl = Tensor.Create([1.0, 2.0, 3.0], [3]);
        var values = bcl.ToArray();
        NdArray ours = NdArray.FromArray(values);
        Assert.Equal(12.0, (ours * 2.0).Sum().ToScalar());
        System.Range r = 0..2;
        Assert.Equal(2, r.End.Value);
    }
}
