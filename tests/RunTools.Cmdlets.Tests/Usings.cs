global using RunTools.Core;
global using Xunit;
